# -----------------------------------------------------------------------------------------------
# What the SQL needs (udf-service sql render --target aws)
# -----------------------------------------------------------------------------------------------

output "gateway_url" {
  description = "Base URL of the API stage, ending with `/`: the API integration's API_ALLOWED_PREFIXES and the prefix of every external function's URL (`<gateway_url>snowflake/people/full`)."
  value       = try(local.gateway_url, null)
}

output "snowflake_role_arn" {
  description = "ARN of the IAM role Snowflake assumes: the API integration's API_AWS_ROLE_ARN."
  value       = try(aws_iam_role.snowflake.arn, null)
}

output "api_provider" {
  description = "API_PROVIDER for the API integration: `aws_api_gateway` or `aws_private_api_gateway`."
  value       = local.api_provider
}

output "sql_render_command" {
  description = "The `udf-service sql render` command that prints the Snowflake SQL (API integration, external functions, views) for this deployment. Replace `<caller_role>` with the Snowflake role that may call the functions."
  value       = format("udf-service sql render --target %s --var gateway_url=%s --var aws_role_arn=%s --var caller_role=<caller_role>", local.is_private ? "aws-private" : "aws", local.gateway_url, try(aws_iam_role.snowflake.arn, ""))
}

output "function_urls" {
  description = "Full URL of each route, for `AS '<url>'` in CREATE EXTERNAL FUNCTION."
  value       = try({ for k, path in local.routes : k => "${local.gateway_url}${path}" }, {})
}

output "snowflake_trust_configured" {
  description = "`false` after step 1 (the role doesn't trust Snowflake yet), `true` once snowflake_iam_user_arn and snowflake_external_id are set (or the integration is managed here)."
  value       = local.snowflake_trusted
}

# -----------------------------------------------------------------------------------------------
# API Gateway
# -----------------------------------------------------------------------------------------------

output "rest_api_id" {
  description = "API Gateway REST API id (also the first label of gateway_url; private APIs are addressed by it)."
  value       = try(aws_api_gateway_rest_api.this.id, null)
}

output "stage_name" {
  description = "API Gateway stage name."
  value       = try(aws_api_gateway_stage.this.stage_name, null)
}

output "vpc_endpoint_ids" {
  description = "`PRIVATE` only: the execute-api VPC endpoints attached to the API."
  value       = local.is_private ? var.vpc_endpoint_ids : []
}

output "api_access_log_group_name" {
  description = "CloudWatch log group with the API access log (one line per Snowflake request)."
  value       = try(aws_cloudwatch_log_group.api_access.name, null)
}

# -----------------------------------------------------------------------------------------------
# Service
# -----------------------------------------------------------------------------------------------

output "ecr_repository_url" {
  description = "ECR repository to push the image to (`docker push <url>:<tag>`), when the module created it."
  value       = try(aws_ecr_repository.this[0].repository_url, null)
}

output "image" {
  description = "Image reference the task definition runs."
  value       = local.image
}

output "ecs_cluster_name" {
  description = "ECS cluster name (`aws ecs update-service --cluster <this> --service <ecs_service_name> --force-new-deployment`)."
  value       = try(aws_ecs_cluster.this.name, null)
}

output "ecs_service_name" {
  description = "ECS service name."
  value       = try(aws_ecs_service.this.name, null)
}

output "service_log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = try(aws_cloudwatch_log_group.service.name, null)
}

output "load_balancer_dns_name" {
  description = "Internal DNS name of the network load balancer (reachable from inside the VPC only)."
  value       = try(aws_lb.this.dns_name, null)
}

output "sixsense_token_secret_arn" {
  description = "Secrets Manager secret holding the 6sense token (`aws secretsmanager put-secret-value --secret-id <this> --secret-string <token>`)."
  value       = local.sixsense_token_secret_arn
}

output "state_backend" {
  description = "Where the service keeps its state: `redis` (ElastiCache replication group, the default), `valkey-serverless` (ElastiCache Serverless) or `sqlite` (`create_redis = false`: the task's own volume)."
  value       = local.use_serverless ? "valkey-serverless" : (local.use_redis ? "redis" : "sqlite")
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint, when Redis was created."
  value       = try(aws_elasticache_replication_group.this[0].primary_endpoint_address, aws_elasticache_serverless_cache.this[0].endpoint[0].address, null)
}

output "kms_key_arn" {
  description = "KMS key encrypting logs, secrets, Redis and ECR."
  value       = local.kms_key_arn
}

# -----------------------------------------------------------------------------------------------
# Snowflake (create_snowflake_objects = true)
# -----------------------------------------------------------------------------------------------

output "snowflake_api_integration_name" {
  description = "Name of the API integration Terraform created, or `null`."
  value       = try(snowflake_api_integration.this[0].name, null)
}

output "snowflake_function_names" {
  description = "Fully qualified names of the external functions Terraform created."
  value       = try({ for k, f in snowflake_external_function.this : k => f.fully_qualified_name }, {})
}
