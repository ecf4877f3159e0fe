"""layerkit.executor"""
