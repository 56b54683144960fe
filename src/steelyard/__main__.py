from steelyard.cli.main import run

run()
