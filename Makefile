# Shortcuts for ./coursevm (which installs what it needs; run as root).
.PHONY: local local-stop test test-quick setup
local:
	./coursevm local
local-stop:
	./coursevm local-stop
test:
	./coursevm test
test-quick:
	./coursevm test --quick
setup:
	./coursevm setup
