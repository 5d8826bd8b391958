"""BatVision dataset layouts (BV1, BV2): torch-free readers, writers and the generator.

The raw-array I/O lives here so offline evaluation tools can reuse it; the torch ``Dataset``
classes in ``training/datasets`` wrap it.
"""
