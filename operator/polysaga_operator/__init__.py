"""The polysaga operator: provisions each service's own database from a ServiceDatabase
resource (kopf). Named ``polysaga_operator`` because the standard library owns ``operator``."""
