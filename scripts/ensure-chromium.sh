#!/usr/bin/env bash
# Make sure a Chromium is available for the test that renders the HTML compliance report
# (report/html_test.go), and print its path.
#
#   scripts/ensure-chromium.sh
#
# $CHROMIUM wins when set; then chromium, chromium-browser, google-chrome on PATH. When none is
# found and this runs as root with apt-get (a fresh CI machine), Debian's chromium package is
# installed. Otherwise it fails, saying what to install.
set -euo pipefail

readonly PKG=chromium

find_chromium() {
	if [[ -n ${CHROMIUM:-} ]]; then
		if [[ -x $CHROMIUM ]]; then
			echo "$CHROMIUM"
			return 0
		fi
		echo "ensure-chromium.sh: CHROMIUM=$CHROMIUM is not an executable file" >&2
		return 2
	fi
	local name
	for name in chromium chromium-browser google-chrome google-chrome-stable chrome headless_shell; do
		if command -v "$name" >/dev/null; then
			command -v "$name"
			return 0
		fi
	done
	return 1
}

rc=0
find_chromium || rc=$?
if ((rc == 0)); then
	exit 0
elif ((rc == 2)); then
	exit 1
fi

if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "ensure-chromium.sh: no Chromium found; install one (Debian/Ubuntu: apt-get install chromium)" \
		"or set CHROMIUM=/path/to/chrome" >&2
	exit 1
fi
echo "ensure-chromium.sh: no Chromium found; installing the $PKG package" >&2
{
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PKG"
} >&2 || {
	echo "ensure-chromium.sh: installing the $PKG package failed" >&2
	exit 1
}
find_chromium || {
	echo "ensure-chromium.sh: the $PKG package is installed but no chromium is on PATH" >&2
	exit 1
}
