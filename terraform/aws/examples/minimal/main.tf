# Minimal root module: sixsense-udf in the region's default VPC, one task, SQLite state, the
# Snowflake side created from the SQL that `udf-service sql render` prints. The full walkthrough
# is docs/deploy.md; in short:
#
#   terraform init
#   terraform apply -target=module.sixsense_udf.aws_ecr_repository.this \
#                   -target=module.sixsense_udf.aws_secretsmanager_secret.sixsense_token
#   aws secretsmanager put-secret-value ...            # the 6sense token
#   docker buildx build --platform linux/amd64 -t <account>.dkr.ecr.<region>.amazonaws.com/sixsense-udf:<tag> --push .
#   terraform apply                                    # step 1: role trusts nobody yet
#   udf-service sql render --target aws ...            # run it in Snowflake, DESCRIBE INTEGRATION
#   terraform apply                                    # step 2, with snowflake_iam_user_arn and
#                                                      # snowflake_external_id in terraform.tfvars
#
# The default VPC has public subnets only, so the tasks get public IPs to reach the 6sense API
# and ECR; their security group still admits only traffic from inside the VPC.

# -----------------------------------------------------------------------------------------------
# Providers
# -----------------------------------------------------------------------------------------------

provider "aws" {
  region = var.region

  default_tags {
    tags = { project = "sixsense-udf" }
  }
}

# Terraform configures every provider a module declares, even with create_snowflake_objects =
# false. Credentials come from the environment (SNOWFLAKE_ORGANIZATION_NAME,
# SNOWFLAKE_ACCOUNT_NAME, SNOWFLAKE_USER, SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY, ...) or
# from ~/.snowflake/config.toml; see terraform/aws/README.md.
provider "snowflake" {
  role = var.snowflake_role

  preview_features_enabled = [
    "snowflake_api_integration_resource",
    "snowflake_external_function_resource",
  ]
}

# -----------------------------------------------------------------------------------------------
# Network: the default VPC
# -----------------------------------------------------------------------------------------------

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

# -----------------------------------------------------------------------------------------------
# sixsense-udf
# -----------------------------------------------------------------------------------------------

module "sixsense_udf" {
  #checkov:skip=CKV_AWS_333:The default VPC has public subnets and no NAT gateway, so tasks need a public IP to reach the 6sense API and ECR. Inbound traffic is still limited to the VPC by the service security group. Use private subnets with a NAT gateway in production.
  source = "../../"

  name      = var.name
  image_tag = var.image_tag

  vpc_id           = data.aws_vpc.default.id
  subnet_ids       = data.aws_subnets.default.ids
  assign_public_ip = true

  # Step 2 of the trust setup (null in step 1).
  snowflake_iam_user_arn = var.snowflake_iam_user_arn
  snowflake_external_id  = var.snowflake_external_id

  sixsense_simulate      = var.sixsense_simulate
  lb_deletion_protection = var.lb_deletion_protection

  desired_count               = var.desired_count
  autoscaling                 = var.autoscaling
  extra_invoke_principal_arns = var.extra_invoke_principal_arns

  create_snowflake_objects = var.create_snowflake_objects
  snowflake_database       = var.snowflake_database
  snowflake_schema         = var.snowflake_schema
}
