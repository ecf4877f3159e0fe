"""layerkit.content"""
