"""recbench's built-in plugins: models, datasets, metrics and splitters.

Each subpackage or module is registered through the ``recbench`` entry-point group, exactly like a
third-party plugin, and imports only the plugin API, ``recbench.api``.
"""
