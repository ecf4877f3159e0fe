"""layerkit.cache"""
