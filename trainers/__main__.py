"""``python -m trainers``: one proxy run without Ray (see trainers.train.main)."""

from trainers.train import main

raise SystemExit(main())
