#!/bin/sh
# certbot deploy hook: copy renewed certificates where the dotbridge user can read them.
# Install: cp scripts/deploy/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/dotbridge
# dotbridge notices the changed files and swaps the certificate without dropping connections.
# CERT_GROUP: the group that may read the key (default dotbridge, the systemd unit's user;
# 1993 for the Docker image's "deno" user). CERT_DIR: where to copy (/etc/dotbridge/tls).
set -eu
dest=${CERT_DIR:-/etc/dotbridge/tls}
group=${CERT_GROUP:-dotbridge}
install -d -m 0750 -o root -g "$group" "$dest"
install -m 0640 -o root -g "$group" "$RENEWED_LINEAGE/fullchain.pem" "$dest/fullchain.pem"
install -m 0640 -o root -g "$group" "$RENEWED_LINEAGE/privkey.pem" "$dest/privkey.pem"
