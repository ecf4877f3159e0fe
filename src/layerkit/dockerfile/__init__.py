"""layerkit.dockerfile"""
