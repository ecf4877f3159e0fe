"""layerkit.registry"""
