"""layerkit.lint"""
