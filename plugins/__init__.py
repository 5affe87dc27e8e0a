"""The built-in plugins of letras.

Each module here is registered exactly as a third-party plugin is, and uses only the public
API of ``letras.core``. Registration modules never import torch: the torch code sits in
modules named by lazy ``"module:attr"`` factories, imported only when a component is built.
"""
