"""CLI tests."""


def exit_status(main, argv) -> int:
    """Exit status of a CLI `main(argv)`: argparse errors leave through SystemExit, as on the command line."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code
