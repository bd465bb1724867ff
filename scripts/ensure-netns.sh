#!/usr/bin/env bash
# Make sure the network-namespace fault tests (cmd/retention: TestCutConnectionFreesTheRunLock,
# TestCutForGoodEndsTheRun) find their tools: unshare (util-linux), ip (iproute2) and nft
# (nftables). They make a network namespace of their own and drop packets inside it, which
# touches nothing else on the machine, and need root.
#
#   scripts/ensure-netns.sh
#
# When a tool is missing and this runs as root with apt-get (a fresh CI machine), the Debian
# packages are installed. Otherwise it fails, saying what to install.
set -euo pipefail

readonly TOOLS=(unshare ip nft)
readonly PKGS=(util-linux iproute2 nftables)

missing() {
	local t
	for t in "${TOOLS[@]}"; do
		command -v "$t" >/dev/null || return 0
	done
	return 1
}

if ! missing; then
	exit 0
fi
if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "ensure-netns.sh: one of ${TOOLS[*]} not found; install them (Debian/Ubuntu: apt-get install ${PKGS[*]})" >&2
	exit 1
fi
echo "ensure-netns.sh: one of ${TOOLS[*]} not found; installing ${PKGS[*]}" >&2
{
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
} >&2 || {
	echo "ensure-netns.sh: installing ${PKGS[*]} failed" >&2
	exit 1
}
if missing; then
	echo "ensure-netns.sh: ${PKGS[*]} are installed but one of ${TOOLS[*]} is not on PATH" >&2
	exit 1
fi
