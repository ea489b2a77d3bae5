"""The Kaldi bindings, imported in the one order that works.

Why a module of its own: with ``kaldifst`` 1.8.x, ``import kaldifst`` before ``import kaldi_hmm_gmm``
hangs forever, and the other order makes ``TrainingGraphCompiler`` reject FSTs with a TypeError (the
two wheels disagree on the FST type). ``kaldifst==1.7.17`` with ``kaldi-hmm-gmm==1.1.4`` works when
``kaldi_hmm_gmm`` comes first. Every module of this package imports both from here, so the order
holds however the package is entered, and a wrong ``kaldifst`` is reported instead of hanging.
"""

from __future__ import annotations

import kaldi_hmm_gmm as khg  # must come before kaldifst

import kaldifst  # isort: skip

KALDIFST_SUPPORTED = "1.7."


def check_versions() -> dict[str, str]:
    """The versions in use; raises when ``kaldifst`` is not the 1.7 series this backend was tested with."""
    fst_version = str(getattr(kaldifst, "__version__", "unknown"))
    if not fst_version.startswith(KALDIFST_SUPPORTED):
        raise RuntimeError(
            f"kaldifst {fst_version} is installed; the kaldi aligner needs kaldifst 1.7.x (pin kaldifst==1.7.17): "
            "with 1.8.x importing it beside kaldi_hmm_gmm hangs or breaks graph compilation"
        )
    return {"kaldi_hmm_gmm": str(getattr(khg, "__version__", "unknown")), "kaldifst": fst_version}


__all__ = ["check_versions", "kaldifst", "khg"]
