"""layerkit.graph"""
