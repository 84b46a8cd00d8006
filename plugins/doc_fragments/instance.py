# -*- coding: utf-8 -*-
# Copyright: cairncms.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r'''
options:
  env_file:
    description:
      - The CairnCMS instance's C(.env) file, read the way CairnCMS reads it (dotenv syntax, value prefixes,
        C(<NAME>_FILE) indirection).
      - It may be missing when O(env_overrides) are given - a new home whose C(.env) a restore writes.
      - See the collection's C(docs/configuration.md) for the rules.
    type: path
  env_overrides:
    description:
      - "Variables that win over the C(.env) file, for example C({DB_FILENAME: /srv/clone/data.db})."
      - Also the whole configuration when O(env_file) is not given.
      - Values are logged like any option; secrets (C(SECRET), C(DB_PASSWORD), C(*_PASSWORD), C(*_SECRET),
        C(*_TOKEN), storage keys) are refused here and go in O(env_secret_overrides).
    type: dict
    default: {}
  env_secret_overrides:
    description:
      - Like O(env_overrides), for secret values; never logged.
    type: dict
    default: {}
  instance_dir:
    description:
      - Directory that relative paths in the configuration (C(DB_FILENAME), C(STORAGE_<LOC>_ROOT)) are
        resolved against, that is the directory CairnCMS is started in.
      - Defaults to the directory of O(env_file).
    type: path
'''

    REPOSITORY = r'''
options:
  repository:
    description:
      - "The repository of restore points, for example C({type: local, path: /var/backups/cairn})."
      - "A repository of C(type: local) takes an absolute C(path) on the managed host."
      - "C(type: s3) takes C(bucket), C(prefix), and optionally C(region), C(endpoint) (S3-compatible services),
        C(force_path_style), C(profile) (an AWS profile) and C(server_side_encryption)."
      - "C(type: gcs) takes C(bucket), C(prefix), and optionally C(api_endpoint) and C(key_filename) (a service
        account key file; without it Google application default credentials are used)."
      - "C(type: azure) takes C(container), C(prefix), C(account_name), and optionally C(endpoint)."
      - In an object store a restore point becomes visible when its manifest is written, after every artifact
        it lists; see docs/restore-point-format.md.
    type: dict
    required: true
  repository_credentials:
    description:
      - Credentials of an object-store repository, kept out of logs and results.
      - "C(type: s3): C(key) and C(secret). Without them the AWS credential chain is used (C(AWS_*)
        variables, profiles, instance roles)."
      - "C(type: azure): C(account_key). Without it azure-identity's DefaultAzureCredential is used."
      - "C(type: gcs): C(service_account_json), the whole content of a service account's JSON key file (text, parsed
        in memory and never written). Without it, C(key_filename) in O(repository) (a key file on the host), or
        Google application default credentials."
    type: dict
    default: {}
  instance:
    description:
      - Name of the instance in the repository (letters, digits, C(.), C(_), C(-)).
    type: str
    required: true
  encryption_recipients:
    description:
      - age public keys (C(age1...), or C(ssh-ed25519)/C(ssh-rsa) public keys) that new restore points are
        encrypted to; the database dump, the file bytes and the secrets bundle are encrypted, each decryptable
        by any one of them (keep an offline recovery key among them).
      - Empty - nothing is encrypted and the secrets bundle is not captured.
    type: list
    elements: str
    default: []
  encryption_identity_file:
    description:
      - File with the age secret key (C(AGE-SECRET-KEY-1...)) or SSH private key that reads encrypted restore points.
    type: path
  encryption_identity:
    description:
      - The age secret key (C(AGE-SECRET-KEY-1...), or the text of an age identity file) or the SSH private key
        itself, as text, beside or instead of O(encryption_identity_file) - for a key that a secret store or an AWX
        credential hands to the play as a variable.
      - Parsed in memory on the managed host and never written to a file by the module; never logged.
    type: str
  encryption_passphrase:
    description:
      - A passphrase instead of (or beside) key files - the instance gets a repository key (C(keys/passphrase.age)),
        itself encrypted with this passphrase in age's passphrase mode; restore points are encrypted to that key,
        and the passphrase opens it again for restores.
    type: str
  encryption_required:
    description:
      - Fail instead of writing an unencrypted restore point when no recipient is configured.
    type: bool
    default: false
  trusted_signers:
    description:
      - ed25519 public keys (C(ssh-ed25519 AAAA...), the line of the signing key's C(.pub) file) whose signatures
        are trusted. When given, every restore point read must carry a signature (C(manifest.sig), made at backup
        with C(signing_key) of M(cairncms.ops.cairn_restore_point)) by one of them; an unsigned or wrongly signed
        restore point is refused before anything is changed.
      - Needs the Python library C(cryptography) on the host where the module runs.
    type: list
    elements: str
    default: []
'''

    CLAIM = r'''
options:
  claim:
    description:
      - A reader claim on the restore point, from M(cairncms.ops.cairn_repository_claim). The module checks that it
        is still held (a prune removes a claim only once it went stale) and keeps it fresh while it works, so that
        no prune removes the restore point meanwhile.
      - When the claim is found gone while the module works (nothing refreshed it for longer than a prune's
        C(lock_stale_after), and the prune removed it), the module stops. The processes it started are killed,
        what it staged is removed, and it fails saying so.
    type: str
  time_limit:
    description:
      - Seconds the module may work; V(0) for no limit. When they run out, the module stops on the host. The
        processes it started are killed, what it staged is removed, and it fails saying so. Unlike the task keyword
        C(timeout), which ends the task on the controller and leaves the module running on the host (still reading
        the restore point, still writing), the module is gone when the task fails.
    type: int
    default: 0
'''
