"""OME-XML and OME-TIFF files, and Micro-Manager's OME-TIFF stacks."""
