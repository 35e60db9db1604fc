"""The interactive shell (``cortan``, ``cortan chat``): a front end, sibling of ``cortan ask``.

Layer: front end. It is handed its services (:mod:`cortan.shell.services`), its
input and output by the composition root, and runs every prompt through the
engine's one entry point.
"""
