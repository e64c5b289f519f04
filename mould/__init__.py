"""mould: one photo of a person to a textured, watertight 3D mesh (Moulding Humans, ICCV 2019).

The core is light to import (numpy only); meshing, training and open3d load lazily where needed.
Units are metres; the camera frame is OpenCV's (x right, y down, z forward); depth is camera-space z.
"""

from mould.camera import Camera, look_at, view_direction
from mould.container import SCHEMA_VERSION, Mould
from mould.decode import PointCloud, mould_to_points
from mould.encode import Encoding, encode_mesh, mesh_to_mould
from mould.errors import InputError, MouldError
from mould.framing import frame_points, square_box

__version__ = "0.1.0"

__all__ = [
    "Camera",
    "Encoding",
    "InputError",
    "Mould",
    "MouldError",
    "PointCloud",
    "SCHEMA_VERSION",
    "encode_mesh",
    "frame_points",
    "look_at",
    "mesh_to_mould",
    "mould_to_points",
    "square_box",
    "view_direction",
]
