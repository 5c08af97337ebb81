# -----------------------------------------------------------------------------------------------
# Terraform and provider versions. No provider blocks here: the root module configures them
# (see examples/minimal/main.tf).
# -----------------------------------------------------------------------------------------------

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    # Only resources in snowflake.tf use it, all behind var.create_snowflake_objects. Terraform
    # still configures every provider a module declares, so the root module needs a snowflake
    # provider block either way (README.md, "Providers").
    snowflake = {
      source  = "snowflakedb/snowflake"
      version = "~> 2.3"
    }
  }
}
