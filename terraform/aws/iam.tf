# IAM: the role Snowflake assumes to sign its calls, the ECS task execution and task roles, and
# API Gateway's CloudWatch role.
#
# Two-step trust (README.md): the Snowflake API integration needs this role's ARN, and the role's
# trust policy needs two values Snowflake generates for that integration (DESCRIBE INTEGRATION:
# API_AWS_IAM_USER_ARN and API_AWS_EXTERNAL_ID).
#   step 1: apply with snowflake_iam_user_arn/snowflake_external_id unset; the role exists but
#           trusts only this account, behind an external id nobody knows;
#   create the API integration with API_AWS_ROLE_ARN = output snowflake_role_arn, DESCRIBE it;
#   step 2: set both variables and apply again; now only Snowflake's IAM user, presenting the
#           external id, can assume the role.
# With create_snowflake_objects = true Terraform creates the integration itself and feeds both
# values in, so one apply does both steps.

# -----------------------------------------------------------------------------------------------
# Locals
# -----------------------------------------------------------------------------------------------

locals {
  snowflake_iam_user_arn = var.snowflake_iam_user_arn != null ? var.snowflake_iam_user_arn : try(snowflake_api_integration.this[0].api_aws_iam_user_arn, null)
  snowflake_external_id  = var.snowflake_external_id != null ? var.snowflake_external_id : try(snowflake_api_integration.this[0].api_aws_external_id, null)
  snowflake_trusted      = local.snowflake_iam_user_arn != null && local.snowflake_external_id != null

  # Step 1 placeholder: this account, with an external id Snowflake can't know.
  snowflake_trust_principal   = local.snowflake_trusted ? local.snowflake_iam_user_arn : "arn:${local.partition}:iam::${local.account_id}:root"
  snowflake_trust_external_id = local.snowflake_trusted ? local.snowflake_external_id : "step-1-placeholder-set-snowflake_external_id"

  ecs_task_secret_arns = compact([
    local.sixsense_token_secret_arn,
    try(aws_secretsmanager_secret.state_url[0].arn, null),
  ])
}

# -----------------------------------------------------------------------------------------------
# The role Snowflake assumes
# -----------------------------------------------------------------------------------------------

resource "aws_iam_role" "snowflake" {
  name        = local.snowflake_role_name
  description = "Assumed by Snowflake (API integration) to call the ${var.name} API Gateway"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "SnowflakeApiIntegration"
      Effect    = "Allow"
      Principal = { AWS = local.snowflake_trust_principal }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = local.snowflake_trust_external_id } }
    }]
  })

  lifecycle {
    precondition {
      condition     = (var.snowflake_iam_user_arn == null) == (var.snowflake_external_id == null)
      error_message = "Set snowflake_iam_user_arn and snowflake_external_id together (both from DESCRIBE INTEGRATION), or neither."
    }
  }

  tags = local.tags
}

resource "aws_iam_role_policy" "snowflake_invoke" {
  name = "invoke-${var.name}-api"
  role = aws_iam_role.snowflake.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "InvokeTheUdfApi"
      Effect   = "Allow"
      Action   = "execute-api:Invoke"
      Resource = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/*/snowflake/*"
    }]
  })
}

# -----------------------------------------------------------------------------------------------
# ECS roles
# -----------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasks"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ECS pulls the ${var.name} image, writes its logs and reads its secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = length(local.ecs_task_secret_arns) > 0 ? 1 : 0

  name = "read-${var.name}-secrets"
  role = aws_iam_role.execution.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadTheServiceSecrets"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = local.ecs_task_secret_arns
      },
      {
        Sid      = "DecryptThem"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = local.kms_key_arn
        Condition = {
          StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
        }
      },
    ]
  })
}

# The service itself calls no AWS API; the role exists so permissions can be added explicitly.
resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "Identity of the ${var.name} containers (no permissions by default)"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = local.tags
}

# -----------------------------------------------------------------------------------------------
# API Gateway -> CloudWatch Logs (account setting, see gateway.tf)
# -----------------------------------------------------------------------------------------------

resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = var.create_api_gateway_account_settings ? 1 : 0

  name_prefix = "${var.name}-apigw-"
  description = "API Gateway writes stage logs to CloudWatch Logs"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "apigateway.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = var.create_api_gateway_account_settings ? 1 : 0

  role       = aws_iam_role.api_gateway_cloudwatch[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}
