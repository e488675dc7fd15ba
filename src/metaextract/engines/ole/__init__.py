"""Files in OLE2 compound storage (Olympus OIB, Zeiss ZVI) on a bounded reader of our own."""
