"""layerkit.solver"""
