"""The compiled loops of diffkit's image ops (diffkit/_native.c) and graph colourings
(diffkit/_native_graph.c). They are optional: where no C compiler is available the build
skips them and diffkit runs its numpy versions."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "diffkit._native",
            ["diffkit/_native.c"],
            depends=["diffkit/_native_kernels.h", "diffkit/_native_direct.h"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        ),
        Extension(
            "diffkit._native_graph",
            ["diffkit/_native_graph.c"],
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            optional=True,
        ),
    ]
)
