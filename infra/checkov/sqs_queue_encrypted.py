"""CKV_TENANTRY_1: every SQS queue is encrypted at rest, with SSE-SQS or SSE-KMS.

checkov's own CKV_AWS_27 recognizes only a KMS key (KmsMasterKeyId) and so fails queues that use
SSE-SQS (SqsManagedSseEnabled), which costs nothing and needs no key. lib/checkov.ts acknowledges
CKV_AWS_27 on the queues that have SSE-SQS on; this check keeps the promise checked by the scanner.
Loaded by test/checkov.test.ts with --external-checks-dir.
"""
from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


class SqsQueueEncrypted(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure every SQS queue is encrypted at rest (SSE-SQS or SSE-KMS)",
            id="CKV_TENANTRY_1",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["AWS::SQS::Queue"],
        )

    def scan_resource_conf(self, conf):
        props = conf.get("Properties") or {}
        if props.get("KmsMasterKeyId"):
            return CheckResult.PASSED
        # Explicitly on: a queue without the property relies on the account's default.
        if props.get("SqsManagedSseEnabled") in (True, "true", "True"):
            return CheckResult.PASSED
        return CheckResult.FAILED


check = SqsQueueEncrypted()
