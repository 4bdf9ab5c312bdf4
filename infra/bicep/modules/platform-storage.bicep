// platform-storage.bicep: the environment default (AZCREDS_DEFAULT_STORAGE_ACCOUNT), the
// platform's own storage for workspaces with no credential link and no org default. It has
// no container of its own: the backend creates one per organization
// (AZCREDS_DEFAULT_CONTAINER_PREFIX + a hash of the org id) at the organization's first
// /creds, so that a container SAS reaches that organization's data only. /creds hands out
// user delegation SAS for it, signed with a user delegation key the managed identity gets.
// The identity's one role here, Storage Blob Data Contributor at account scope, covers
// both: its actions include Microsoft.Storage/storageAccounts/blobServices/containers/write
// (create a container) and .../generateUserDelegationKey/action, which needs an
// account-scope role; its data actions cover the SAS's read, write, delete and list.
// A user delegation SAS is an Entra ID authorization, so shared key access stays disabled.

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Object (principal) id of the managed identity that signs the SAS.')
param principalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// Account scope, not container scope: Get User Delegation Key is an account operation, and
// the containers are created after the deployment, one per organization.
resource blobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageBlobDataContributor)
  scope: account
  properties: {
    description: 'Storage Blob Data Contributor for the azcreds managed identity (environment default SAS)'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = account.name
output id string = account.id
