"""Side-by-side build benchmarks: layerkit, docker (BuildKit) and buildah.

Run ``python -m benchmarks --help``; prepare the machine with
``scripts/bench-setup.sh``. See docs/benchmarks.md.
"""
