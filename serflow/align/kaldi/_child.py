"""Entry point of an alignment worker process: ``python -m serflow.align.kaldi._child FD``.

Kept out of the package's imports so that ``-m`` runs it fresh (see :mod:`.pool` for why workers are
plain child processes).
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from serflow.align.kaldi.pool import serve


def main() -> None:
    conn = Connection(int(sys.argv[1]))
    try:
        serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
