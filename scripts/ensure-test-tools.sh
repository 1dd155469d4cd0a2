#!/bin/bash
# Part of `npm test` (pretest): the tools the tests run for real that npm and cargo cannot provide.
# SoftHSM2 is the PKCS#11 token of the KEK-in-a-token tests; on Debian/Ubuntu it is installed here when
# missing (as root, or with passwordless sudo); elsewhere the message says what to install.
set -euo pipefail
if command -v softhsm2-util >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
  echo "test tools: installing softhsm2 (the PKCS#11 token of the tests)"
  if "${as_root[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq softhsm2; then exit 0; fi
fi
echo "test tools: softhsm2 is required by the PKCS#11 tests and could not be installed here: install SoftHSM2 (softhsm2-util) and run again" >&2
exit 1
