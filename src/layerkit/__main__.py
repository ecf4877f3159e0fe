from layerkit.cli import main

main()
