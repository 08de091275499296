"""Data: arrays from `.npz`/`.csv`/`.npy` files and image folders checked against a spec's inputs, and the DANN
paper's two-moons toy and a digits shift (`specc data digits`)."""

from spec_lang.data.arrays import DataFile, check_arrays, load_arrays, read_npy
from spec_lang.data.digits import digits_shift
from spec_lang.data.images import image_folder_arrays, read_image_folder
from spec_lang.data.moons import make_moons, two_moons

__all__ = [
    "DataFile",
    "check_arrays",
    "digits_shift",
    "image_folder_arrays",
    "load_arrays",
    "make_moons",
    "read_image_folder",
    "read_npy",
    "two_moons",
]
