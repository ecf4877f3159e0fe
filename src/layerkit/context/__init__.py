"""layerkit.context"""
