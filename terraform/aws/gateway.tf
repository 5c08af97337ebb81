# API Gateway REST API in front of the service. Snowflake signs every call with SigV4 as the role
# in iam.tf (method authorization AWS_IAM); the resource policy admits that role and no one else.
# Each route has POST (a batch) and GET (Snowflake's poll of an asynchronous batch, same URL and
# headers), proxied unchanged (path, sf-* headers, body) through a VPC link to the internal
# network load balancer in ecs.tf.

# -----------------------------------------------------------------------------------------------
# Locals
# -----------------------------------------------------------------------------------------------

locals {
  route_resource_ids = {
    full     = aws_api_gateway_resource.full.id
    cached   = aws_api_gateway_resource.cached.id
    estimate = aws_api_gateway_resource.estimate.id
  }

  # "full-POST" => { route = "full", method = "POST" }, ... : every route gets both methods.
  route_methods = {
    for pair in setproduct(keys(local.routes), ["GET", "POST"]) :
    "${pair[0]}-${pair[1]}" => { route = pair[0], method = pair[1] }
  }

  invoke_resource = "${aws_api_gateway_rest_api.this.execution_arn}/*"

  # Private APIs: only calls from Snowflake's VPC (select system$get_snowflake_platform_info()).
  private_condition = {
    for k, v in { Condition = { StringEquals = { "aws:SourceVpc" = coalesce(var.snowflake_vpc_id, "unset") } } } :
    k => v if local.is_private
  }
}

# -----------------------------------------------------------------------------------------------
# REST API and routes
# -----------------------------------------------------------------------------------------------

resource "aws_api_gateway_rest_api" "this" {
  name        = var.name
  description = "sixsense-udf: Snowflake external functions for 6sense people/full"

  # Every payload is passed to the service as bytes, so a gzip body (COMPRESSION = AUTO/GZIP)
  # arrives untouched instead of being read as UTF-8 text.
  binary_media_types = ["*/*"]

  endpoint_configuration {
    types            = [var.endpoint_type]
    vpc_endpoint_ids = local.is_private && length(var.vpc_endpoint_ids) > 0 ? var.vpc_endpoint_ids : null
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = !local.is_private || var.snowflake_vpc_id != null
      error_message = "endpoint_type = PRIVATE needs snowflake_vpc_id (snowflake-vpc-id from select system$get_snowflake_platform_info())."
    }
  }

  tags = local.tags
}

resource "aws_api_gateway_resource" "snowflake" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "snowflake"
}

resource "aws_api_gateway_resource" "people" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.snowflake.id
  path_part   = "people"
}

resource "aws_api_gateway_resource" "full" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.people.id
  path_part   = "full"
}

resource "aws_api_gateway_resource" "cached" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.full.id
  path_part   = "cached"
}

resource "aws_api_gateway_resource" "estimate" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.full.id
  path_part   = "estimate"
}

# Validates request parameters only. Bodies are not validated: they go to the service untouched.
resource "aws_api_gateway_request_validator" "this" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "parameters-only"
  validate_request_body       = false
  validate_request_parameters = true
}

resource "aws_api_gateway_method" "this" {
  for_each = local.route_methods

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.route_resource_ids[each.value.route]
  http_method          = each.value.method
  authorization        = "AWS_IAM"
  request_validator_id = aws_api_gateway_request_validator.this.id
}

resource "aws_api_gateway_vpc_link" "this" {
  name        = var.name
  description = "API Gateway to the ${var.name} network load balancer"
  target_arns = [aws_lb.this.arn]

  tags = local.tags
}

resource "aws_api_gateway_integration" "this" {
  for_each = local.route_methods

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_method.this[each.key].resource_id
  http_method             = aws_api_gateway_method.this[each.key].http_method
  type                    = "HTTP_PROXY"
  integration_http_method = each.value.method
  uri                     = "http://${aws_lb.this.dns_name}/${local.routes[each.value.route]}"
  connection_type         = "VPC_LINK"
  connection_id           = aws_api_gateway_vpc_link.this.id
  passthrough_behavior    = "WHEN_NO_MATCH"

  # 29 s is the most a REST API waits (the default, and the ceiling without a quota increase).
  # The service answers within UDF_SYNC_BUDGET_S (20 s): a batch that needs longer is answered
  # 202 and keeps running, and Snowflake polls it with GET on the same URL until it gets 200
  # (up to 10 minutes). So long batches go async instead of hitting a 504 here.
  timeout_milliseconds = var.integration_timeout_ms
}

# -----------------------------------------------------------------------------------------------
# Resource policy: the Snowflake role, nobody else
# -----------------------------------------------------------------------------------------------

resource "aws_api_gateway_rest_api_policy" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      merge({
        Sid       = "SnowflakeRoleInvokes"
        Effect    = "Allow"
        Principal = { AWS = concat([local.snowflake_session_arn], var.extra_invoke_principal_arns) }
        Action    = "execute-api:Invoke"
        Resource  = local.invoke_resource
      }, local.private_condition),
      {
        Sid       = "EveryoneElseIsDenied"
        Effect    = "Deny"
        Principal = "*"
        Action    = "execute-api:Invoke"
        Resource  = local.invoke_resource
        Condition = {
          StringNotEquals = {
            "aws:PrincipalArn" = concat([local.snowflake_role_arn], var.extra_invoke_principal_arns)
          }
        }
      },
    ]
  })
}

# -----------------------------------------------------------------------------------------------
# Deployment, stage, logs
# -----------------------------------------------------------------------------------------------

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # A REST API change is live only after a new deployment; the resource policy counts too.
  triggers = {
    redeployment = sha1(jsonencode([
      local.routes,
      [for k, m in aws_api_gateway_method.this : [k, m.id, m.authorization]],
      [for k, i in aws_api_gateway_integration.this : [k, i.id, i.uri, i.timeout_milliseconds, i.connection_id]],
      aws_api_gateway_rest_api_policy.this.policy,
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [aws_api_gateway_integration.this, aws_api_gateway_rest_api_policy.this]
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${var.name}/access"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Response caching would replay stale batch answers: every POST body is a different batch and every async GET must see the job's current state. The service has its own per-lead cache.
  #checkov:skip=CKV2_AWS_51:Client certificates authenticate the gateway to a public HTTPS backend. This backend is only reachable through the VPC link (PrivateLink) to an internal TCP load balancer, where no certificate can be checked.
  #checkov:skip=CKV2_AWS_77:No web ACL is attached unless you pass waf_web_acl_arn, and its rules are yours to choose; the service is Python (gunicorn/Flask) and has no Log4j to exploit.
  #checkov:skip=CKV2_AWS_29:Every call must be SigV4-signed by the one role the resource policy admits, so a WAF sees no anonymous traffic to filter. Pass waf_web_acl_arn to attach one anyway.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationStatus  = "$context.integration.status"
      integrationLatency = "$context.integration.latency"
      integrationError   = "$context.integration.error"
      errorMessage       = "$context.error.message"
      userArn            = "$context.identity.userArn"
      sourceIp           = "$context.identity.sourceIp"
      xrayTraceId        = "$context.xrayTraceId"
    })
  }

  tags = local.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "this" {
  #checkov:skip=CKV_AWS_225:Caching stays off for the reason given on the stage (CKV_AWS_120): batches and async polls must never be answered from a gateway cache.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false # would log request bodies: lead e-mail addresses
    throttling_rate_limit  = var.throttling.rate_limit
    throttling_burst_limit = var.throttling.burst_limit
    caching_enabled        = false # see CKV_AWS_120 on the stage
    cache_data_encrypted   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count = var.waf_web_acl_arn != null ? 1 : 0

  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = var.waf_web_acl_arn
}

# Stage logs need an account-level (per region) CloudWatch role for API Gateway.
resource "aws_api_gateway_account" "this" {
  count = var.create_api_gateway_account_settings ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn
}
