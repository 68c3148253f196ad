#!/usr/bin/env bash
# Makes what `security.tls.*` needs, with openssl, in DIR:
#   ca.crt, ca.key            a cluster CA (kept when it is already there,
#                             so running this again renews the servers'
#                             certificates under the same CA)
#   master.crt, master.key    the masters' certificate, signed by the CA
#   worker.crt, worker.key    the workers' certificate, signed by the CA
# Each server certificate names the subject alternative names given after
# DIR (default: localhost, 127.0.0.1 and ::1), valid DAYS days (default
# 365). Keys are P-256, mode 0600.
#
#   scripts/tls-certs.sh /tmp/alluxio-local/tls
#   scripts/tls-certs.sh ./tls DNS:alluxio.example.internal IP:10.0.0.5
#
# Then, for example:
#   -D security.tls.enabled=true -D security.tls.ca_file=DIR/ca.crt
#   -D master.tls.cert_file=DIR/master.crt -D master.tls.key_file=DIR/master.key
#   -D worker.tls.cert_file=DIR/worker.crt -D worker.tls.key_file=DIR/worker.key
set -euo pipefail

dir=${1:?usage: tls-certs.sh DIR [SAN ...]}
shift
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(DNS:localhost IP:127.0.0.1 IP:::1)
fi
days=${DAYS:-365}
san=$(IFS=,; echo "${names[*]}")

mkdir -p "$dir"
cd "$dir"
umask 077
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days "$((days * 10))" \
        -subj "/CN=alluxio-rs cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for role in master worker; do
    # Written beside and renamed over the old ones, so a server that
    # reloads never reads half a file.
    openssl req "${ec[@]}" -keyout "$role.key.new" -out "$role.csr" \
        -subj "/CN=alluxio-$role" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        "$san" > "$role.ext"
    openssl x509 -req -in "$role.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out "$role.crt.new" -days "$days" -extfile "$role.ext" 2>/dev/null
    rm -f "$role.csr" "$role.ext"
    chmod 0644 "$role.crt.new"
    mv "$role.key.new" "$role.key"
    mv "$role.crt.new" "$role.crt"
done
chmod 0644 ca.crt
echo "TLS files in $PWD: ca.crt, master.crt/.key, worker.crt/.key for $san"
