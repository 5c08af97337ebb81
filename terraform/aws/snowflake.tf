# Optional: the Snowflake side, created with the snowflake provider instead of the SQL that
# `udf-service sql render --target aws` prints. Everything here has count/for_each 0 unless
# var.create_snowflake_objects. Both resource types are provider preview features: the provider
# block must list "snowflake_api_integration_resource" and "snowflake_external_function_resource"
# in preview_features_enabled (examples/minimal/main.tf does).
#
# With the integration managed here, its API_AWS_IAM_USER_ARN and API_AWS_EXTERNAL_ID flow into
# the role's trust policy (iam.tf) in the same apply: no second step.
#
# The functions mirror sql/external/people_full*.sql (names, overloads, CALLED ON NULL INPUT,
# VOLATILE, context headers, batch sizes, compression) with one difference: the provider's
# snowflake_external_function cannot create SECURE functions, so roles with USAGE can read the
# gateway URL (it is protected by IAM, not by secrecy). No shared-secret HEADERS here either;
# use the SQL route for those. Grants are left to you (sql/common/function_grants.sql).

# -----------------------------------------------------------------------------------------------
# Locals
# -----------------------------------------------------------------------------------------------

locals {
  # The service reads row arguments positionally in this order (DESIGN.md, "Input rows").
  lead_fields = ["email", "country", "website", "company", "title", "leadsource", "firstname", "lastname", "role", "industry"]

  snowflake_signatures = {
    short  = [for f in slice(local.lead_fields, 0, 2) : { name = f, type = "VARCHAR" }]
    fields = [for f in local.lead_fields : { name = f, type = "VARCHAR" }]
    object = [{ name = "lead", type = "OBJECT" }]
  }

  # "full-short" => people_full(email, country) on /snowflake/people/full, ... (3 routes x 3 overloads)
  snowflake_functions = {
    for pair in setproduct(keys(local.routes), keys(local.snowflake_signatures)) :
    "${pair[0]}-${pair[1]}" => {
      name           = pair[0] == "full" ? var.snowflake_function_name : "${var.snowflake_function_name}_${pair[0]}"
      path           = local.routes[pair[0]]
      arguments      = local.snowflake_signatures[pair[1]]
      max_batch_rows = pair[0] == "full" ? var.snowflake_max_batch_rows.full : var.snowflake_max_batch_rows.cached
    }
  }
}

# -----------------------------------------------------------------------------------------------
# API integration
# -----------------------------------------------------------------------------------------------

resource "snowflake_api_integration" "this" {
  count = var.create_snowflake_objects ? 1 : 0

  name                 = var.snowflake_api_integration_name
  api_provider         = local.api_provider
  api_aws_role_arn     = local.snowflake_role_arn
  api_allowed_prefixes = [local.gateway_url]
  enabled              = true
  comment              = "sixsense-udf: 6sense enrichment through Amazon API Gateway (terraform)"
}

# -----------------------------------------------------------------------------------------------
# External functions
# -----------------------------------------------------------------------------------------------

resource "snowflake_external_function" "this" {
  for_each = var.create_snowflake_objects ? local.snowflake_functions : {}

  database = var.snowflake_database
  schema   = var.snowflake_schema
  name     = each.value.name

  dynamic "arg" {
    for_each = each.value.arguments
    content {
      name = arg.value.name
      type = arg.value.type
    }
  }

  return_type         = "VARIANT"
  return_null_allowed = true
  # A NULL email must come back as status invalid_input, not as a bare NULL.
  null_input_behavior = "CALLED ON NULL INPUT"
  # Not IMMUTABLE: answers change with 6sense data, the cache and pending rows.
  return_behavior = "VOLATILE"

  api_integration           = snowflake_api_integration.this[0].name
  url_of_proxy_and_resource = "${local.gateway_url}${each.value.path}"
  context_headers           = ["CURRENT_ACCOUNT", "CURRENT_USER"]
  max_batch_rows            = each.value.max_batch_rows
  compression               = "AUTO"
  comment                   = "sixsense-udf: 6sense firmographics, scores and segments per lead (${each.value.path})"

  lifecycle {
    precondition {
      condition     = var.snowflake_database != null && var.snowflake_schema != null
      error_message = "create_snowflake_objects = true needs snowflake_database and snowflake_schema."
    }
  }

  # Created after the role trusts Snowflake and the stage exists, so the first select works.
  depends_on = [aws_iam_role.snowflake, aws_api_gateway_stage.this]
}
