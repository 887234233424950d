from fedineighbour.cli import main

raise SystemExit(main())
