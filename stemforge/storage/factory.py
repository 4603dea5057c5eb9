"""Pick the storage backend from settings: Azure when an Azure variable is set, else local disk."""

from stemforge.settings import Settings
from stemforge.storage.base import Storage
from stemforge.storage.local import LocalDiskStorage
from stemforge.storage.url_signing import BlobUrlSigner


def storage_from_settings(settings: Settings) -> Storage:
    if settings.azure_storage_connection_string or settings.azure_storage_account_url:
        # Imported here so the local default never loads the Azure SDK.
        from stemforge.storage.azure_blob import AzureBlobStorage

        return AzureBlobStorage.from_settings(settings)
    key = settings.api_key
    return LocalDiskStorage(
        root=settings.local_storage_dir,
        container=settings.blob_container_name,
        public_base_url=settings.public_base_url,
        # With an API key, blobs are read by signed URL (or with the key), never by guessing.
        signer=BlobUrlSigner.from_api_key(key.get_secret_value(), settings.local_blob_url_expiry_seconds)
        if key is not None
        else None,
    )
