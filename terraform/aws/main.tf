# sixsense-udf on AWS: Snowflake -> API Gateway (REST, AWS_IAM) -> VPC link -> network load
# balancer -> ECS Fargate tasks running the image -> 6sense API.
#
# Files: main.tf (shared: names, KMS, ECR, the token secret), gateway.tf (API Gateway), iam.tf
# (the role Snowflake assumes, task roles), ecs.tf (load balancer, service, autoscaling),
# redis.tf (shared state for more than one task), snowflake.tf (optional Snowflake objects).

# -----------------------------------------------------------------------------------------------
# Context
# -----------------------------------------------------------------------------------------------

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

# -----------------------------------------------------------------------------------------------
# Locals
# -----------------------------------------------------------------------------------------------

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  container_name = "udf-service"
  container_port = 8080

  # The service routes the gateway exposes, each with GET and POST (GET = Snowflake's async poll).
  routes = {
    full     = "snowflake/people/full"
    cached   = "snowflake/people/full/cached"
    estimate = "snowflake/people/full/estimate"
  }

  kms_key_arn = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.this[0].arn
  image       = var.image != null ? var.image : "${try(aws_ecr_repository.this[0].repository_url, "")}:${coalesce(var.image_tag, "unset")}"

  # State that outlives a task, by default even for one task: every cached answer was paid for,
  # and a task's own volume is lost on every deploy. ElastiCache (redis.tf), not SQLite on EFS:
  # the SQLite backend runs in WAL mode, which needs shared memory that a network filesystem does
  # not provide. More than one task needs the shared store anyway (cache, jobs, rate limiter).
  max_tasks             = var.autoscaling.enabled ? var.autoscaling.max_capacity : var.desired_count
  use_redis             = coalesce(var.create_redis, true)
  use_serverless        = local.use_redis && var.state_store == "serverless"
  use_replication_group = local.use_redis && !local.use_serverless

  # Computed rather than read from aws_iam_role.snowflake, so that the optional Snowflake API
  # integration (which needs this ARN) and the role's trust policy (which needs the
  # integration's IAM user and external id) don't form a dependency cycle.
  snowflake_role_name        = coalesce(var.snowflake_role_name, "${var.name}-snowflake")
  snowflake_role_arn         = "arn:${local.partition}:iam::${local.account_id}:role/${local.snowflake_role_name}"
  snowflake_session_arn      = "arn:${local.partition}:sts::${local.account_id}:assumed-role/${local.snowflake_role_name}/snowflake"
  is_private                 = var.endpoint_type == "PRIVATE"
  api_provider               = local.is_private ? "aws_private_api_gateway" : "aws_api_gateway"
  gateway_url                = "https://${aws_api_gateway_rest_api.this.id}.execute-api.${local.region}.${data.aws_partition.current.dns_suffix}/${var.stage_name}/"
  sixsense_token_secret_arn  = var.sixsense_token_secret_arn != null ? var.sixsense_token_secret_arn : try(aws_secretsmanager_secret.sixsense_token[0].arn, null)
  create_sixsense_secret     = var.sixsense_token_secret_arn == null
  write_sixsense_token_value = local.create_sixsense_secret && nonsensitive(var.sixsense_api_token != null)

  tags = merge(var.tags, { "app" = "sixsense-udf" })
}

# -----------------------------------------------------------------------------------------------
# KMS: one customer managed key for logs, secrets, Redis and ECR
# -----------------------------------------------------------------------------------------------

resource "aws_kms_key" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  description             = "${var.name}: CloudWatch logs, Secrets Manager, ElastiCache and ECR"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })

  tags = local.tags
}

resource "aws_kms_alias" "this" {
  count = var.kms_key_arn == null ? 1 : 0

  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

# -----------------------------------------------------------------------------------------------
# ECR repository for the image
# -----------------------------------------------------------------------------------------------

resource "aws_ecr_repository" "this" {
  count = var.create_ecr_repository ? 1 : 0

  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = local.kms_key_arn
  }

  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  count = var.create_ecr_repository ? 1 : 0

  repository = aws_ecr_repository.this[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images after 14 days"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}

# -----------------------------------------------------------------------------------------------
# The 6sense token, injected into the container as SIXSENSE_API_TOKEN
# -----------------------------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "sixsense_token" {
  count = local.create_sixsense_secret ? 1 : 0
  #checkov:skip=CKV2_AWS_57:6sense issues the token; no rotation Lambda can mint a new one. Rotate by putting a new value and forcing a new deployment (docs/deploy.md).

  name_prefix             = "${var.name}/sixsense-api-token-"
  description             = "6sense API token for ${var.name} (SIXSENSE_API_TOKEN). Put the value with: aws secretsmanager put-secret-value --secret-id <arn> --secret-string <token>"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "sixsense_token" {
  count = local.write_sixsense_token_value ? 1 : 0

  secret_id     = aws_secretsmanager_secret.sixsense_token[0].id
  secret_string = var.sixsense_api_token
}
