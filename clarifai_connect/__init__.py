"""clarifai-connect: move annotated data into and out of Clarifai.

The public API grows here as the pieces land: the client classes live in
:mod:`clarifai_connect.client`, the local API server in :mod:`clarifai_connect.server`.
"""

__version__ = "0.1.0"
