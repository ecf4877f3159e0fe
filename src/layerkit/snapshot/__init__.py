"""layerkit.snapshot"""
