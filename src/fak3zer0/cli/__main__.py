from fak3zer0.cli import main

raise SystemExit(main())
