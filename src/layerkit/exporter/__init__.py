"""layerkit.exporter"""
