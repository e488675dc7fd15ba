"""The TIFF family: plain and MetaSeries TIFF, ImageJ, STK, LSM, SVS, and the header reader they share."""
