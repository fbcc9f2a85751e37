"""The mixed lake the interop checks read: testdata/sample (three DPoD tenants and an AWS
CloudHSM cluster) plus generated logs of every other vendor auditlake reads (a second
CloudHSM cluster, Azure Key Vault, Azure Managed HSM, Google Cloud KMS, HashiCorp
Vault), converted with the given binary. Shared by tests/interop.py and
tests/spark_check.py.
"""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every vendor's `vendor` value in the lake this builds.
VENDORS = ["aws-cloudhsm", "azure-keyvault", "azure-mhsm", "dpod", "gcp-kms", "hashicorp-vault"]


def build(binary, tmp, lake):
    """Converts the sample and one generated archive per other vendor into `lake`."""
    def run(*args):
        subprocess.run([binary, *args], check=True, stdout=subprocess.DEVNULL)

    run("convert", os.path.join(ROOT, "testdata", "sample"), "--lake", lake, "--json")
    for vendor, events, extra in [
        ("aws-cloudhsm", 600, []),
        ("azure-keyvault", 400, []),
        ("azure-mhsm", 300, []),
        ("gcp-kms", 400, []),
        ("hashicorp-vault", 400, ["--tenant", "vault-prod"]),
    ]:
        out = os.path.join(tmp, vendor)
        run("generate", "--vendor", vendor, "--events", str(events), "--months", "2", "--tenants", "1",
            "--seed", "3", "--output", out, "-q")
        run("convert", out, "--lake", lake, "--json", *extra)
