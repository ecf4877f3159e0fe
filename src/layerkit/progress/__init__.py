"""layerkit.progress"""
