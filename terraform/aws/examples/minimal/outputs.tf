output "gateway_url" {
  description = "Base URL of the API stage (API_ALLOWED_PREFIXES)."
  value       = module.sixsense_udf.gateway_url
}

output "snowflake_role_arn" {
  description = "IAM role Snowflake assumes (API_AWS_ROLE_ARN)."
  value       = module.sixsense_udf.snowflake_role_arn
}

output "sql_render_command" {
  description = "Prints the Snowflake SQL for this deployment."
  value       = module.sixsense_udf.sql_render_command
}

output "snowflake_trust_configured" {
  description = "`true` once step 2 is applied."
  value       = module.sixsense_udf.snowflake_trust_configured
}

output "ecr_repository_url" {
  description = "Where to push the image."
  value       = module.sixsense_udf.ecr_repository_url
}

output "sixsense_token_secret_arn" {
  description = "Secret to put the 6sense token into."
  value       = module.sixsense_udf.sixsense_token_secret_arn
}

output "ecs_cluster_name" {
  description = "ECS cluster."
  value       = module.sixsense_udf.ecs_cluster_name
}

output "ecs_service_name" {
  description = "ECS service."
  value       = module.sixsense_udf.ecs_service_name
}

output "service_log_group_name" {
  description = "Container logs."
  value       = module.sixsense_udf.service_log_group_name
}

output "api_access_log_group_name" {
  description = "API access log (one line per Snowflake request)."
  value       = module.sixsense_udf.api_access_log_group_name
}
