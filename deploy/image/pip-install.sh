#!/bin/sh
# `pip install "$@"` for the image build, shaped by optional inputs in deploy/image/:
#   wheels/*.whl  an offline wheelhouse: pip installs from it alone and never asks an index;
#   ca/*.crt      extra CA certificates (a corporate proxy's) trusted besides the system ones.
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_TRUSTED_HOST build arguments name a private index
# or mirror; an argument left unset reaches here empty and is dropped.
set -eu
here="$(dirname "$0")"

for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || unset "$name"
done

if ls "$here"/ca/*.crt >/dev/null 2>&1; then
    cat /etc/ssl/certs/ca-certificates.crt "$here"/ca/*.crt > /tmp/pip-ca-bundle.pem
    export PIP_CERT=/tmp/pip-ca-bundle.pem
fi

if ls "$here"/wheels/*.whl >/dev/null 2>&1; then
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$here/wheels"
fi

exec pip install "$@"
