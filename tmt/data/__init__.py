"""Datasets as per-camera sequences of normalized 2D and root-relative camera-space 3D (numpy only)."""

from tmt.data.dataset import PoseDataset, Sequence
from tmt.data.h36m import load_h36m
from tmt.data.mpi3dhp import load_mpi_inf_3dhp

__all__ = ["PoseDataset", "Sequence", "load_h36m", "load_mpi_inf_3dhp"]
