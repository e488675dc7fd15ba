"""Filesets: files that belong together (an HCS plate and its vendor files), found and read as one.

A fileset is what one Bio-Formats reader would read from its master file: an ImageXpress ``.HTD`` plate with
its ``TimePoint_*``/``ZStep_*`` TIFFs, a CellVoyager ``.wpi`` with its ``.mlf``/``.mrf`` and TIFFs, a Harmony
``Index.idx.xml`` with its TIFFs, ...; a lone file is a fileset of one. :mod:`.model` holds the contract every
kind follows: ``detect`` groups paths into :class:`~.model.FilesetSpec`, ``read`` turns one spec into a
:class:`~.model.FilesetRead` (one OME-XML document for the whole fileset, and each member's planes).
"""
