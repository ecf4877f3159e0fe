"""layerkit.frontend"""
